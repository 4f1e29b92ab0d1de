#!/usr/bin/env bash
# e2e_bolt: applications on Neo4j's JavaScript driver (pinned in
# tests/bolt-driver, installed by bolt_driver_install) against `shiplog
# serve` -- the query engine over Bolt (tests/bolt-driver/serve_test.js:
# every value kind, graph structures, autocommit, explicit and managed
# transactions, rollback, error codes and recovery, roles, bookmarks,
# neo4j:// routing) -- and the command's own contract: usage errors, one
# writer, `query` reading beside it, SIGTERM. Then a receiver's standby
# over Bolt (`receive --bolt`): reads, writes refused, and a read whose
# bookmark waits while the shipper is stopped (SIGSTOP, SIGCONT).
# Skips (77) without node or when npm cannot install the driver.
set -u
. "$(dirname "$0")/lib_e2e.sh"
e2e_need -c serve node curl
e2e_begin e2e_bolt
bolt_driver_install

# run_js DESCRIPTION ARGS...: serve_test.js; its ok/FAIL lines count
run_js() {
  local desc=$1
  shift
  timeout 300 node "$SRC/tests/bolt-driver/serve_test.js" "$@" >"$T/js.out" 2>&1
  local rc=$?
  while read -r word rest; do
    case $word in ok) ok "$desc: $rest" ;; FAIL) bad "$desc: $rest" ;; skip) skip "$desc: $rest" ;; esac
  done <"$T/js.out"
  [ $rc -eq 0 ] || grep -q '^FAIL' "$T/js.out" || { bad "$desc: exit $rc"; tail -5 "$T/js.out"; }
}
U=$T/users
for who in admin:admin reader:reader editor:editor; do
  "$BIN" passwd "$U" "${who%%:*}" --role "${who#*:}" <<<"pw-${who%%:*}" 2>/dev/null
done
S=$T/primary
"$BIN" init "$S" >/dev/null

# ---- the command's contract ---------------------------------------------------------------
expect 0 "serve --help" "$BIN" serve --help
expect 2 "serve without --auth or --no-auth" "$BIN" serve "$S" --listen 127.0.0.1:0
expect 2 "serve with both --auth and --no-auth" "$BIN" serve "$S" --listen 127.0.0.1:0 --auth "$U" --no-auth
expect 2 "serve without --listen" "$BIN" serve "$S" --no-auth
expect 2 "serve --tls-cert without --tls-key" "$BIN" serve "$S" --listen 127.0.0.1:0 --no-auth --tls-cert x
expect 1 "serve of a directory that is no store" "$BIN" serve "$T/nothing" --listen 127.0.0.1:0 --no-auth

# ---- the driver ------------------------------------------------------------------------------
MPORT=$(free_port)
start_serve serve "$S" --auth "$U" --bookmark-timeout 300 --metrics "127.0.0.1:$MPORT" || exit 1
run_js "driver" "$PORT" main admin pw-admin pw-reader pw-editor
curl -sf "http://127.0.0.1:$MPORT/metrics" >"$T/metrics.txt"
check "metrics: commits counted" grep -qE '^shiplog_bolt_commits_total [1-9]' "$T/metrics.txt"
check "metrics: statement latencies" grep -qE '^shiplog_bolt_statement_seconds_count [1-9]' "$T/metrics.txt"
check "metrics: data.mdb" grep -qE '^shiplog_lmdb_used_bytes [1-9]' "$T/metrics.txt"
check "metrics: data.mdb's free pages" grep -qE '^shiplog_lmdb_free_bytes [0-9]' "$T/metrics.txt"
contains "$T/metrics.txt" 'shiplog_bolt_errors_total{code="Neo.ClientError.Statement.SyntaxError"}' "metrics: errors by code"
run_js "login" "$PORT" wrong-password admin
expect 1 "another writer is refused while serve runs" "$BIN" exec "$S" - <<<'{"op":"create_node","labels":["X"]}'
contains "$T/err" "open for writing by another process" "the refusal says why"
expect 0 "query reads the store beside serve" "$BIN" query "$S" 'MATCH (m:M) RETURN m.v AS v' --format jsonl
contains "$T/out" '{"v":1}' "query sees what the driver committed"
stop_serve serve
grep -q 'Sanitizer\|runtime error' "$T/serve.log" && bad "sanitizer report in serve.log"
expect 2 "serve --server-agent that drivers cannot parse" "$BIN" serve "$S" --listen 127.0.0.1:0 --no-auth --server-agent Neo4j
start_serve timeout "$S" --auth "$U" --tx-timeout 1500 --server-agent Neo4j/5.13.0-custom || exit 1
run_js "tx timeout" "$PORT" tx-timeout editor pw-editor
agent=$(timeout 60 node -e "const n = require('neo4j-driver'); const d = n.driver('bolt://127.0.0.1:$PORT', n.auth.basic('editor', 'pw-editor'));
  d.getServerInfo().then((i) => { console.log(i.agent); return d.close(); })" 2>&1)
if [ "$agent" = Neo4j/5.13.0-custom ]; then ok "--server-agent: the driver reads $agent"; else bad "--server-agent: the driver read '$agent'"; fi
stop_serve timeout

# ---- a standby over Bolt: receive --bolt ---------------------------------------------------
expect 2 "receive --bolt without --bolt-auth or --bolt-no-auth" "$BIN" receive --listen 127.0.0.1:0 --data "$T/rx0" --insecure --bolt 127.0.0.1:0
expect 2 "receive --bolt-auth without --bolt" "$BIN" receive --listen 127.0.0.1:0 --data "$T/rx0" --insecure --bolt-auth "$U"
expect 2 "receive --bolt-server-agent that drivers cannot parse" "$BIN" receive --listen 127.0.0.1:0 --data "$T/rx0" --insecure --bolt 127.0.0.1:0 --bolt-no-auth --bolt-server-agent "a b/1.0"
BOLT_RX=$(free_port)
start_receiver "$T/rx" --insecure --bolt "127.0.0.1:$BOLT_RX" --bolt-auth "$U" --bookmark-timeout 30000 || exit 1
start_serve primary "$S" --auth "$U" --database main || exit 1
"$BIN" ship "$S" --to "127.0.0.1:$RX_PORT" --stream main --insecure --heartbeat-ms 200 2>"$T/ship.log" &
SHIP_PID=$!
pids+=("$SHIP_PID")
nodes=$("$BIN" query "$S" 'MATCH (n) RETURN count(n) AS c' --format jsonl | jq .c)
check "serve names its address for the shipper" grep -qx "127.0.0.1:$PORT" "$S/bolt.address"
check "the standby catches up" e2e_wait_applied "$T/rx" main "$(e2e_last_txid "$S")" 60
run_js "standby" "$BOLT_RX" standby editor pw-editor main "$nodes" "$PORT"
check "the shipper reports the standby's Bolt address" e2e_until 30 grep -qx "bolt=127.0.0.1:$BOLT_RX" "$S/ship/main.status"
run_js "routing" "$PORT" primary-route reader pw-reader main "$BOLT_RX"

# a read that brings the bookmark of a write the standby has not received
# yet waits for it: the shipper is stopped while the primary commits
kill -STOP "$SHIP_PID"
timeout 60 node "$SRC/tests/bolt-driver/serve_test.js" "$PORT" write admin pw-admin main Waited >"$T/write.out" 2>&1
bookmark=$(awk '$1 == "bookmark" { print $2 }' "$T/write.out")
check "the primary's write gives a bookmark" test -n "$bookmark"
timeout 60 node "$SRC/tests/bolt-driver/serve_test.js" "$BOLT_RX" bookmark-wait reader pw-reader main Waited "$bookmark" >"$T/wait.out" 2>&1 &
WAIT_PID=$!
sleep 1
check "the bookmark read waits while the shipper is stopped" kill -0 "$WAIT_PID"
kill -CONT "$SHIP_PID"
wait "$WAIT_PID"
while read -r word rest; do
  case $word in ok) ok "standby: $rest" ;; FAIL) bad "standby: $rest" ;; esac
done <"$T/wait.out"
grep -q '^ok' "$T/wait.out" || { bad "bookmark wait: no answer"; tail -3 "$T/wait.out"; }

# a shipper killed outright no longer feeds the standby: the primary's
# routing table stops naming it (the shipper's status file stays behind)
kill -KILL "$SHIP_PID"
wait "$SHIP_PID" 2>/dev/null
run_js "routing after the shipper's SIGKILL" "$PORT" primary-route-gone reader pw-reader main "$BOLT_RX"
stop_serve primary
check "serve removes bolt.address at exit" test ! -e "$S/bolt.address"
kill -TERM "$RX_PID"
if wait "$RX_PID"; then ok "SIGTERM stops the receiver and its Bolt server, exit 0"; else bad "receive exited $? on SIGTERM"; fi
grep -q 'Sanitizer\|runtime error' "$T/rx.log" "$T/primary.log" && bad "sanitizer report in rx.log or primary.log"

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
