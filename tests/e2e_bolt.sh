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
e2e_need -c serve node
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
# start_serve NAME STORE ARGS...: `shiplog serve` on a free port; sets
# SERVE_PID and PORT; its stderr in $T/NAME.log
start_serve() {
  local name=$1 store=$2
  shift 2
  rm -f "$T/$name.port"
  "$BIN" serve "$store" --listen 127.0.0.1:0 --ready-file "$T/$name.port" "$@" 2>"$T/$name.log" &
  SERVE_PID=$!
  pids+=("$SERVE_PID")
  e2e_until 30 test -s "$T/$name.port" || { bad "$name: serve did not start"; tail -5 "$T/$name.log"; return 1; }
  PORT=$(cat "$T/$name.port")
}
# stop_serve NAME: SIGTERM; it must exit 0 (under ASan: no leak, no report)
stop_serve() {
  kill -TERM "$SERVE_PID"
  if wait "$SERVE_PID"; then ok "$1: SIGTERM stops serve, exit 0"; else
    bad "$1: serve exited $? on SIGTERM"
    grep -m5 -E 'Sanitizer|runtime error' "$T/$1.log"
  fi
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
start_serve serve "$S" --auth "$U" --bookmark-timeout 300 || exit 1
run_js "driver" "$PORT" main admin pw-admin pw-reader pw-editor
run_js "login" "$PORT" wrong-password admin
expect 1 "another writer is refused while serve runs" "$BIN" exec "$S" - <<<'{"op":"create_node","labels":["X"]}'
contains "$T/err" "open for writing by another process" "the refusal says why"
expect 0 "query reads the store beside serve" "$BIN" query "$S" 'MATCH (m:M) RETURN m.v AS v' --format jsonl
contains "$T/out" '{"v":1}' "query sees what the driver committed"
stop_serve serve
grep -q 'Sanitizer\|runtime error' "$T/serve.log" && bad "sanitizer report in serve.log"

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
