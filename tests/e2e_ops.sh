#!/usr/bin/env bash
# End-to-end test of operations (README "Operations"), real processes on
# 127.0.0.1:
#   1. metrics: a receiver and a shipper with --metrics serve /metrics while
#      a workload ships; the exposition passes `promtool check metrics`, its
#      counters only grow, its histograms are cumulative, and once caught up
#      every number equals what `shiplog status --json` says on both sides;
#      404 off /metrics.
#   2. Prometheus: a real prometheus server scrapes both, and the lag and
#      the applied txid come back through its HTTP API.
#   3. configuration files: a shipper run from a file does what the same
#      options on the command line do (same stream contents); flags win
#      over the file; a bad key or value is refused naming FILE:LINE.
#   4. logs: --log-format json gives one JSON object per line, with time,
#      level and, from the streams' threads, stream and peer; text lines of
#      the daemons carry the time.
#   5. readiness: READY=1 reaches $NOTIFY_SOCKET once the receiver listens
#      and once the shipper's first session is up (needs python3 for the
#      listening socket; skipped without it).
#   6. scheduled dumps: a dump chain taken while the store changes lists and
#      checks out (`dump --chain DIR`), `load --chain` restores the store's
#      exact state (canonical export), a gap in the chain is named, a new
#      full with --keep-full 1 leaves only the newest chain, and a config
#      file drives a scheduled run.
# Needs $SL_BIN, $SL_BUILD/bench_gen, jq, curl; promtool and prometheus
# (Debian's prometheus package) for 1-2, else those parts are skipped with
# a message. SL_SEED=N replays the random workload.
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need -g jq curl
e2e_begin e2e_ops
# wait_for FILE REGEX SECONDS: prints the first match (grep -o)
wait_for() {
  local deadline=$((SECONDS + $3)) m
  while :; do
    m=$(grep -oE -- "$2" "$1" 2>/dev/null | head -1)
    [ -n "$m" ] && { echo "$m"; return 0; }
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.05
  done
}
# value FILE NAME{LABELS}: the sample's value in an exposition
value() { awk -v k="$2" '$1 == k { print $2; exit }' "$1"; }
scrape() { curl -sf --max-time 5 "$1" >"$2"; }

# Plain TCP here (tests/e2e_security.sh covers TLS); root must say so.
RX_SEC=(--insecure "${ROOT[@]}")

# ---- 1. metrics under a shipping workload ---------------------------------------------
P=$T/p D=$T/data
"$BIN" init "$P" --segment-size 1M >/dev/null
"$BIN" receive --listen 127.0.0.1:0 --data "$D" --ready-file "$T/rx.port" --metrics 127.0.0.1:0 \
  --heartbeat-ms 200 --verbose "${RX_SEC[@]}" 2>"$T/rx.log" &
RX=$!
pids+=("$RX")
RXM=$(wait_for "$T/rx.log" 'http://127\.0\.0\.1:[0-9]+/metrics' 60) || { bad "the receiver logs its metrics address"; exit 1; }
PORT=$(cat "$T/rx.port")
"$BIN" ship "$P" --to "127.0.0.1:$PORT" --stream main --metrics 127.0.0.1:0 --heartbeat-ms 200 \
  --verbose --insecure 2>"$T/sh.log" &
SH=$!
pids+=("$SH")
SHM=$(wait_for "$T/sh.log" 'http://127\.0\.0\.1:[0-9]+/metrics' 60) || { bad "the shipper logs its metrics address"; exit 1; }
ok "1: receiver metrics at $RXM, shipper metrics at $SHM"

e2e_gen "$T/w1" 3000 1
"$BIN" exec "$P" "$T/w1" >/dev/null &
EX=$!
grew=1 n=0 prev=0
while kill -0 "$EX" 2>/dev/null; do
  scrape "$SHM" "$T/sh.$n.prom" || break
  b=$(value "$T/sh.$n.prom" 'shiplog_shipped_bytes_total{stream="main"}')
  [ "${b:-0}" -lt "$prev" ] && grew=0
  prev=${b:-0}
  n=$((n + 1))
  sleep 0.2
done
wait "$EX"
[ "$grew" -eq 1 ] && ok "1: shipped bytes only grow while shipping ($n scrapes)" || bad "1: a counter went back"
L=$(e2e_last_txid "$P")
check "1: the standby applies up to txid $L" e2e_wait_applied "$D" main "$L" 120
# the shipper's reports (status file and metrics) follow within 200 ms or so
reported() {
  scrape "$SHM" "$T/sh.prom" && [ "$(value "$T/sh.prom" 'shiplog_applied_txid{stream="main"}')" = "$L" ] &&
    [ "$("$BIN" status "$P" --json | jq '.streams[0].applied')" = "$L" ]
}
e2e_until 60 reported

scrape "$SHM" "$T/sh.prom" && scrape "$RXM" "$T/rx.prom" || bad "1: scrape after the workload"
"$BIN" status "$P" --json | jq '.streams[0]' >"$T/sh.json"
"$BIN" status --data "$D" --stream main --json | jq '.streams[0]' >"$T/rx.json"
# same SIDE PROM JSON METRIC=KEY...: each metric equals the status key
same() {
  local side=$1 prom=$2 json=$3 bad_ones=""
  shift 3
  for pair in "$@"; do
    local m=${pair%%=*} k=${pair#*=} mv jv
    mv=$(value "$prom" "$m{stream=\"main\"}")
    jv=$(jq -r ".$k" "$json")
    [ "$mv" = "$jv" ] || bad_ones+=" $m=$mv/$k=$jv"
  done
  if [ -z "$bad_ones" ]; then ok "1: $side metrics equal status --json ($#)"; else bad "1: $side metrics differ from status:$bad_ones"; fi
}
same shipper "$T/sh.prom" "$T/sh.json" shiplog_committed_txid=committed shiplog_shipped_txid=shipped \
  shiplog_durable_txid=durable shiplog_applied_txid=applied shiplog_lag_transactions=lag_tx \
  shiplog_lag_bytes=lag_bytes shiplog_shipped_bytes_total=bytes shiplog_shipped_batches_total=batches \
  shiplog_reconnects_total=reconnects
same receiver "$T/rx.prom" "$T/rx.json" shiplog_committed_txid=committed shiplog_shipped_txid=shipped \
  shiplog_durable_txid=durable shiplog_applied_txid=applied shiplog_lag_transactions=lag_tx \
  shiplog_lag_bytes=lag_bytes shiplog_received_bytes_total=bytes shiplog_received_batches_total=batches
[ "$(value "$T/sh.prom" 'shiplog_applied_txid{stream="main"}')" = "$L" ] && ok "1: applied = $L in the metrics" ||
  bad "1: applied in the metrics is not $L"
for side in sh rx; do
  c=$(value "$T/$side.prom" 'shiplog_commit_to_applied_seconds_count{stream="main"}')
  inf=$(value "$T/$side.prom" 'shiplog_commit_to_applied_seconds_bucket{stream="main",le="+Inf"}')
  mono=$(grep '^shiplog_commit_to_durable_seconds_bucket' "$T/$side.prom" | awk '$2 < p { bad = 1 } { p = $2 } END { print bad ? "no" : "yes" }')
  if [ "${c:-0}" -gt 0 ] && [ "$c" = "$inf" ] && [ "$mono" = yes ]; then
    ok "1: $side: latency histograms are cumulative, _count = +Inf bucket = $c"
  else
    bad "1: $side: histogram count $c, +Inf $inf, monotone $mono"
  fi
done
grep -q '^shiplog_compression_ratio{stream="main"} ' "$T/sh.prom" && grep -q '^shiplog_archive_bytes{stream="main"} [1-9]' "$T/rx.prom" &&
  ok "1: compression ratio and archive size are there" || bad "1: compression ratio or archive size missing"
grep -q '^shiplog_lmdb_used_bytes{stream="main"} [1-9]' "$T/rx.prom" && grep -q '^shiplog_lmdb_free_bytes{stream="main"} [0-9]' "$T/rx.prom" &&
  ok "1: the standby's data.mdb and its free pages are there" || bad "1: the standby's data.mdb metrics are missing"
if command -v promtool >/dev/null; then
  for side in sh rx; do
    if promtool check metrics <"$T/$side.prom" >"$T/promtool.out" 2>&1; then ok "1: promtool check metrics ($side)"
    else bad "1: promtool check metrics ($side)"; sed 's/^/    /' "$T/promtool.out" | head; fi
  done
else
  skip "1: promtool is not installed (Debian package prometheus)"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' "${RXM%/metrics}/other")
[ "$code" = 404 ] && ok "1: other paths are 404" || bad "1: /other answered $code"
ctype=$(curl -sI "$RXM" | tr -d '\r' | sed -n 's/^Content-Type: //Ip')
[ "$ctype" = "text/plain; version=0.0.4; charset=utf-8" ] && ok "1: content type $ctype" || bad "1: content type '$ctype'"

# ---- 2. a real Prometheus scrapes both -------------------------------------------------------
if command -v prometheus >/dev/null; then
  hp() { echo "${1#http://}" | sed 's#/metrics$##'; }
  cat >"$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: shiplog-ship
    static_configs: [{targets: ['$(hp "$SHM")']}]
  - job_name: shiplog-receive
    static_configs: [{targets: ['$(hp "$RXM")']}]
EOF
  PP=""
  for try in 1 2 3 4 5; do
    cand=$((20000 + RANDOM % 30000))
    (exec 3<>/dev/tcp/127.0.0.1/$cand) 2>/dev/null && continue # taken
    prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prom" \
      --web.listen-address="127.0.0.1:$cand" >"$T/prom.log" 2>&1 &
    PR=$!
    pids+=("$PR")
    deadline=$((SECONDS + 90))
    while [ "$SECONDS" -lt "$deadline" ]; do
      curl -sf "http://127.0.0.1:$cand/-/ready" >/dev/null 2>&1 && { PP=$cand; break; }
      kill -0 "$PR" 2>/dev/null || break
      sleep 0.1
    done
    [ -n "$PP" ] && break
    kill -9 "$PR" 2>/dev/null
  done
  if [ -z "$PP" ]; then
    bad "2: prometheus did not start"
    tail -5 "$T/prom.log" | sed 's/^/    /'
  else
    ok "2: prometheus on 127.0.0.1:$PP"
    e2e_gen "$T/w2" 500 2
    "$BIN" exec "$P" "$T/w2" >/dev/null
    L=$(e2e_last_txid "$P")
    e2e_wait_applied "$D" main "$L" 60 >/dev/null
    q() { curl -sf --max-time 5 "http://127.0.0.1:$PP/api/v1/query" --data-urlencode "query=$1"; }
    got=""
    deadline=$((SECONDS + 90))
    while [ "$SECONDS" -lt "$deadline" ]; do # scrapes every second; give it time
      got=$(q "shiplog_applied_txid{stream=\"main\"}" | jq -r '[.data.result[] | .metric.job + "=" + .value[1]] | sort | join(" ")')
      [ "$got" = "shiplog-receive=$L shiplog-ship=$L" ] && break
      sleep 0.2
    done
    [ "$got" = "shiplog-receive=$L shiplog-ship=$L" ] && ok "2: Prometheus has applied = $L from both jobs" ||
      bad "2: Prometheus says applied: '$got', want $L from both jobs"
    lag=$(q 'max by (job) (shiplog_lag_transactions{stream="main"})' | jq -r '[.data.result[] | .metric.job + "=" + .value[1]] | sort | join(" ")')
    [ "$lag" = "shiplog-receive=0 shiplog-ship=0" ] && ok "2: lag through the HTTP API: $lag" ||
      bad "2: lag through the HTTP API: '$lag'"
    up=$(q 'sum(up{job=~"shiplog-.*"})' | jq -r '.data.result[0].value[1]')
    [ "$up" = 2 ] && ok "2: both targets up" || bad "2: up = $up"
    kill "$PR" 2>/dev/null
    wait "$PR" 2>/dev/null
  fi
else
  skip "2: prometheus is not installed (Debian package prometheus; scripts/deps.sh --tests installs it)"
fi

# ---- 3. configuration files ------------------------------------------------------------------
kill "$SH" && wait "$SH"
cat >"$T/ship.conf" <<EOF
# the options of: ship P --to 127.0.0.1:$PORT --stream viaconf --batch-bytes 64K
#                 --heartbeat-ms 200 --exit-when-caught-up --insecure
to = 127.0.0.1:$PORT
stream = viaconf ; inline comment
batch-bytes = 64K
heartbeat-ms = 200
exit-when-caught-up = true
insecure
verbose = false
EOF
expect 0 "3: ship from the command line (--exit-when-caught-up)" \
  "$BIN" ship "$P" --to "127.0.0.1:$PORT" --stream viaflags --batch-bytes 64K --heartbeat-ms 200 --exit-when-caught-up --insecure
expect 0 "3: ship from a configuration file" "$BIN" ship "$P" --config "$T/ship.conf"
L=$(e2e_last_txid "$P")
check "3: the stream shipped from the file holds every txid" e2e_wait_applied "$D" viaconf "$L" 120
check "3: ...as does the one from the command line" e2e_wait_applied "$D" viaflags "$L" 120
"$BIN" export "$D/streams/viaconf/standby" --to "$T/conf.json" && "$BIN" export "$D/streams/viaflags/standby" --to "$T/flags.json"
cmp -s "$T/conf.json" "$T/flags.json" && ok "3: both standbys export the same graph" || bad "3: the standbys differ"
expect 0 "3: a flag wins over the file (--stream)" "$BIN" ship "$P" --config "$T/ship.conf" --stream flagwins
check "3: ...the stream is the flag's" e2e_wait_applied "$D" flagwins "$L" 120
printf 'to = 127.0.0.1:%s\nstream = s\nbatch-size = 1M\n' "$PORT" >"$T/bad1.conf"
expect 2 "3: an unknown key is refused" "$BIN" ship "$P" --config "$T/bad1.conf"
contains "$T/err" "$T/bad1.conf:3: unknown key 'batch-size'" "3: ...naming FILE:LINE"
printf 'to = 127.0.0.1:%s\n\nstream = s\nheartbeat-ms = soon\n' "$PORT" >"$T/bad2.conf"
expect 2 "3: a bad value is refused" "$BIN" ship "$P" --config "$T/bad2.conf"
contains "$T/err" "$T/bad2.conf:4: ship: --heartbeat-ms: 'soon'" "3: ...naming FILE:LINE"
printf 'to = nocolon\nstream = s\n' >"$T/bad3.conf"
expect 2 "3: a bad value checked after parsing is refused" "$BIN" ship "$P" --config "$T/bad3.conf"
contains "$T/err" "$T/bad3.conf:1: ship: --to: 'nocolon' is not HOST:PORT" "3: ...naming FILE:LINE"
printf 'insecure = perhaps\n' >"$T/bad4.conf"
expect 2 "3: a flag's value must be a boolean" "$BIN" ship "$P" --config "$T/bad4.conf" --to x:1 --stream s
contains "$T/err" "$T/bad4.conf:1: insecure: 'perhaps' is not true or false" "3: ...naming FILE:LINE"
printf '[ship]\nto = x:1\n' >"$T/bad5.conf"
expect 2 "3: sections are refused" "$BIN" ship "$P" --config "$T/bad5.conf"
expect 1 "3: a missing file is an error" "$BIN" ship "$P" --config "$T/missing.conf"
contains "$T/err" "$T/missing.conf" "3: ...naming it"

# ---- 4. log lines ----------------------------------------------------------------------------
kill "$RX" && wait "$RX"
"$BIN" receive --listen 127.0.0.1:0 --data "$D" --ready-file "$T/rx2.port" --log-format json --verbose \
  --heartbeat-ms 200 "${RX_SEC[@]}" 2>"$T/rx2.log" &
RX=$!
pids+=("$RX")
e2e_until 60 test -s "$T/rx2.port"
PORT=$(cat "$T/rx2.port")
printf 'log-format = json\n' >"$T/json.conf"
e2e_gen "$T/w3" 50 3
"$BIN" exec "$P" "$T/w3" >/dev/null
expect 0 "4: ship with log-format = json in its file" "$BIN" ship "$P" --config "$T/json.conf" \
  --to "127.0.0.1:$PORT" --stream main --exit-when-caught-up --verbose --insecure
cp "$T/err" "$T/sh2.log"
"$BIN" ship "$P" --to "127.0.0.1:1" --stream main --exit-when-caught-up --log-format json --insecure 2>"$T/sh3.log" &
S3=$!
wait_for "$T/sh3.log" '"level": ?"warning"' 60 >/dev/null # it cannot connect, and says so
kill "$S3"
wait "$S3"
kill "$RX" && wait "$RX"
for f in rx2 sh2 sh3; do
  lines=$(wc -l <"$T/$f.log")
  if [ "$lines" -gt 0 ] && jq -e -s 'all(.[]; (.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$")) and (.level | test("^(error|warning|info)$")) and .program == "shiplog" and (.msg | type) == "string")' "$T/$f.log" >/dev/null; then
    ok "4: $f: $lines lines, each a JSON object with time, level, msg"
  else
    bad "4: $f: not JSON lines with time, level, msg"
    head -3 "$T/$f.log" | sed 's/^/    /'
  fi
done
jq -e -s 'any(.[]; .stream == "main" and (.peer | test("^127\\.0\\.0\\.1:[0-9]+$")))' "$T/rx2.log" >/dev/null &&
  ok "4: receiver lines from a stream's connection name the stream and the peer" || bad "4: no stream/peer in the receiver's lines"
jq -e -s 'any(.[]; .stream == "main" and .peer == "127.0.0.1:1" and .level == "warning")' "$T/sh3.log" >/dev/null &&
  ok "4: shipper lines name the stream and the receiver" || bad "4: no stream/peer in the shipper's lines"
grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z shiplog: stream=main peer=127\.0\.0\.1:[0-9]+: info: ' "$T/sh.log" &&
  ok "4: text lines of a daemon: time, stream, peer, level" || bad "4: text lines lack time/stream/peer"

# ---- 5. readiness (sd_notify) ------------------------------------------------------------------
if command -v python3 >/dev/null; then
  NS=$T/notify.sock
  python3 - "$NS" >"$T/notify.out" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(120)
for _ in range(4):
    try:
        print(s.recv(4096).decode().replace("\n", " "), flush=True)
    except socket.timeout:
        break
EOF
  NL=$!
  pids+=("$NL")
  e2e_until 60 test -S "$NS"
  NOTIFY_SOCKET=$NS "$BIN" receive --listen 127.0.0.1:0 --data "$D" --ready-file "$T/rx3.port" "${RX_SEC[@]}" 2>/dev/null &
  RX=$!
  pids+=("$RX")
  e2e_until 60 test -s "$T/rx3.port"
  wait_for "$T/notify.out" 'READY=1 STATUS=listening' 60 >/dev/null && ok "5: the receiver says READY=1 once it listens" ||
    bad "5: no READY=1 from the receiver"
  NOTIFY_SOCKET=$NS "$BIN" ship "$P" --to "127.0.0.1:$(cat "$T/rx3.port")" --stream main --exit-when-caught-up --insecure 2>/dev/null
  wait_for "$T/notify.out" 'READY=1 STATUS=streaming' 60 >/dev/null && ok "5: the shipper says READY=1 once streaming" ||
    bad "5: no READY=1 from the shipper"
  kill "$RX" && wait "$RX"
  wait_for "$T/notify.out" 'STOPPING=1' 60 >/dev/null && ok "5: and STOPPING=1 when stopping" || bad "5: no STOPPING=1"
  kill "$NL" 2>/dev/null
  wait "$NL" 2>/dev/null
else
  skip "5: python3 is not installed (the test's notify socket)"
fi

# ---- 6. scheduled dumps: a chain over a changing store -------------------------------------
Q=$T/q C=$T/chain
"$BIN" init "$Q" --segment-size 256K >/dev/null
e2e_gen "$T/w6a" 800 6
"$BIN" exec "$Q" "$T/w6a" >/dev/null
e2e_gen "$T/w6b" 3000 7
"$BIN" exec "$Q" "$T/w6b" >/dev/null &
EX=$!
runs=0 fails=0
while kill -0 "$EX" 2>/dev/null; do # dumps while the store changes
  "$BIN" dump "$Q" --chain "$C" --quiet 2>>"$T/dump.log" || fails=$((fails + 1))
  runs=$((runs + 1))
  sleep 0.3
done
wait "$EX"
for c in 8 9; do # two more incrementals that surely hold transactions
  e2e_gen "$T/w6c" 200 $c
  "$BIN" exec "$Q" "$T/w6c" >/dev/null
  "$BIN" dump "$Q" --chain "$C" 2>>"$T/dump.log" || fails=$((fails + 1))
done
[ "$fails" -eq 0 ] && ok "6: $((runs + 2)) scheduled dumps while the store changed" || bad "6: $fails of the scheduled dumps failed"
LQ=$(e2e_last_txid "$Q")
if ls "$C" | grep -qvE '^[0-9]{8}T[0-9]{6}Z-(full|incr)-[0-9]+-[0-9]+\.dump$'; then
  bad "6: file names: $(ls "$C" | tr '\n' ' ')"
else
  ok "6: files named by time, kind and txids: $(ls "$C" | wc -l) files, $(ls "$C" | grep -c -- -full-) full"
fi
expect 0 "6: dump --chain lists and checks the chain" "$BIN" dump --chain "$C"
"$BIN" dump --chain "$C" --json >"$T/chain.json"
check "6: one chain, unbroken, ending at the store's last txid $LQ" \
  jqe --argjson l "$LQ" '.ok and (.chains | length) == 1 and .chains[0].last_txid == $l and (.chains[0].files[0].kind == "full") and (.unchained | length) == 0' "$T/chain.json"
expect 0 "6: load --chain" "$BIN" load --chain "$C" --into "$T/restored"
"$BIN" export "$Q" --to "$T/q.json" && "$BIN" export "$T/restored" --to "$T/r.json"
cmp -s "$T/q.json" "$T/r.json" && ok "6: the loaded chain equals the store (canonical export, $(wc -l <"$T/q.json") lines)" ||
  bad "6: the loaded chain differs from the store"
[ "$(e2e_last_txid "$T/restored")" = "$LQ" ] && ok "6: ...at txid $LQ" || bad "6: restored store at txid $(e2e_last_txid "$T/restored")"
expect 1 "6: load --chain into a store that exists" "$BIN" load --chain "$C" --into "$T/restored"
# A gap: the second-to-last incremental removed.
cp -r "$C" "$T/chain2"
gone=$(ls "$T/chain2" | grep -- -incr- | sort -t- -k3,3n | tail -2 | head -1)
rm "$T/chain2/$gone"
expect 1 "6: a chain with a gap fails the check" "$BIN" dump --chain "$T/chain2"
contains "$T/err" "does not follow its parent" "6: ...naming the file that does not follow"
expect 2 "6: --json is for listing" "$BIN" dump "$Q" --chain "$C" --json
# A renewed full and retention.
sleep 1.1
expect 0 "6: a new full dump (--full-every 0) with --keep-full 1" "$BIN" dump "$Q" --chain "$C" --full-every 0 --keep-full 1
files=$(ls "$C")
[ "$(echo "$files" | wc -l)" = 1 ] && echo "$files" | grep -q -- "-full-1-$LQ.dump" &&
  ok "6: only the newest chain is kept: $files" || bad "6: after --keep-full 1: $(echo $files)"
printf 'chain = %s\nkeep-full = 1\nfull-every = 1w\n' "$C" >"$T/dump.conf"
e2e_gen "$T/w6d" 50 10
"$BIN" exec "$Q" "$T/w6d" >/dev/null
expect 0 "6: a scheduled dump from a configuration file" "$BIN" dump "$Q" --config "$T/dump.conf"
[ "$(ls "$C" | grep -c -- -incr-)" = 1 ] && ok "6: ...added an incremental" || bad "6: no incremental from the file's run"

echo "e2e_ops: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
