#!/usr/bin/env bash
# e2e_bolt_wire: the Bolt protocol layer (bolt/) with clients nobody here
# wrote: Neo4j's JavaScript driver (neo4j-driver 6.x from npm, pinned by
# tests/bolt-driver/package-lock.json, installed with `npm ci` into the build
# tree like e2e_cypher's linter) against tests/bolt_echo (a Bolt server on
# the echo backend, until the query engine lands), at Bolt 5.4, 5.2, 5.0 and
# 4.4: every value kind as a parameter and back, graph structures,
# transactions, failures and recovery, routing, wrong credentials; over TLS
# too (server certificate, then client certificates). Then
# hostile clients with raw sockets (tests/bolt-driver/hostile.js): garbage,
# oversized messages, a huge declared string, a byte-at-a-time client and
# 150 idle connections against a cap of 100, while a driver is served, and
# big messages held at once past the server's memory budget. And
# `shiplog passwd`. Skips (77) without node or when npm cannot install the
# driver. Needs $SL_BIN, $SL_TEST_TMP, $SL_SOURCE, $SL_BUILD.
set -u
. "$(dirname "$0")/lib_e2e.sh"
e2e_need -c passwd node
ECHO_BIN=$BUILD/bolt_echo
[ -x "$ECHO_BIN" ] || { echo "skip: no bolt_echo at $ECHO_BIN"; exit 77; }
e2e_begin e2e_bolt_wire

# ---- the driver, pinned ----------------------------------------------------------------
bolt_driver_install

# start_echo NAME ARGS...: bolt_echo on a free port; sets PORT; log in $T/NAME.log
start_echo() {
  local name=$1
  shift
  rm -f "$T/$name.port"
  "$ECHO_BIN" --port-file "$T/$name.port" "$@" >"$T/$name.stats" 2>"$T/$name.log" &
  ECHO_PID=$!
  pids+=("$ECHO_PID")
  for _ in $(seq 100); do [ -s "$T/$name.port" ] && break; sleep 0.1; done
  PORT=$(cat "$T/$name.port" 2>/dev/null)
  [ -n "$PORT" ] || { bad "$name: bolt_echo did not start"; cat "$T/$name.log"; return 1; }
}
# stop_echo: SIGTERM; it must exit 0 (under ASan: no leak, no error report)
stop_echo() {
  kill -TERM "$ECHO_PID"
  if wait "$ECHO_PID"; then :; else
    bad "bolt_echo exited $? on SIGTERM"
    grep -m5 -E 'Sanitizer|runtime error' "$T"/*.log
  fi
}
# run_js DESCRIPTION SCRIPT ARGS...: the script's ok/FAIL lines count
run_js() {
  local desc=$1
  shift
  timeout 300 node "$@" >"$T/js.out" 2>&1
  local rc=$?
  while read -r word rest; do
    case $word in ok) ok "$desc: $rest" ;; FAIL) bad "$desc: $rest" ;; esac
  done <"$T/js.out"
  [ $rc -eq 0 ] || grep -q '^FAIL' "$T/js.out" || { bad "$desc: exit $rc"; tail -5 "$T/js.out"; }
}

# ---- shiplog passwd ------------------------------------------------------------------------
U=$T/users
expect 0 "passwd --help" "$BIN" passwd --help
expect 0 "passwd adds an editor (password on stdin)" "$BIN" passwd "$U" alice --role editor <<<"s3cret pass"
check "users file is mode 0600" [ "$(stat -c %a "$U")" = 600 ]
expect 0 "passwd adds a second user" "$BIN" passwd "$U" bob <<<"bobpw"
check "a new user is a reader" grep -q '^bob reader \$scrypt\$15\$8\$1\$[0-9a-f]\{32\}\$[0-9a-f]\{64\}$' "$U"
expect 0 "passwd changes alice's password" "$BIN" passwd "$U" alice <<<"new pass"
check "a changed user keeps its role" grep -q '^alice editor ' "$U"
check "one line per user" [ "$(grep -c '^alice ' "$U")" = 1 ]
expect 2 "passwd: bad role is a usage error" "$BIN" passwd "$U" carol --role god <<<"x"
expect 2 "passwd: USER missing is a usage error" "$BIN" passwd "$U" <<<"x"
expect 1 "passwd: empty password refused" "$BIN" passwd "$U" carol </dev/null
expect 1 "passwd: a user name with ':' refused" "$BIN" passwd "$U" "a:b" <<<"x"
chmod 640 "$U"
expect 1 "passwd: group-readable users file refused" "$BIN" passwd "$U" carol <<<"x"
contains "$T/err" "chmod 600" "the refusal says how to fix it"
chmod 600 "$U"
check "no FILE.tmp left behind" [ ! -e "$U.tmp" ]

# ---- the driver at each protocol version ------------------------------------------------------
for v in 5.4 5.2 5.0 4.4; do
  start_echo "driver-$v" --auth "$U" --max-version "$v" || continue
  run_js "Bolt $v" "$LOCK/driver_test.js" "$PORT" alice "new pass" "$v"
  stop_echo
done
chmod 644 "$U"
expect 1 "a server refuses a world-readable users file" "$ECHO_BIN" --auth "$U" --port-file "$T/x.port"
chmod 600 "$U"

# ---- TLS ------------------------------------------------------------------------------------
if command -v openssl >/dev/null; then
  bash "$SRC/tests/make_certs.sh" "$T/pki" app >/dev/null
  P=$T/pki
  start_echo tls --auth "$U" --tls-cert "$P/receiver.crt" --tls-key "$P/receiver.key"
  BOLT_TLS_CA=$P/ca.crt run_js "TLS" "$LOCK/driver_test.js" "$PORT" alice "new pass" 5.4
  run_js "TLS server, plain client" "$LOCK/driver_test.js" "$PORT" alice "new pass" 5.4 refused
  BOLT_TLS_CA=$P/rogue-ca.crt run_js "TLS server, untrusted certificate" "$LOCK/driver_test.js" "$PORT" alice "new pass" 5.4 refused
  stop_echo
  start_echo mtls --auth "$U" --tls-cert "$P/receiver.crt" --tls-key "$P/receiver.key" --tls-ca "$P/ca.crt"
  BOLT_TLS_CA=$P/ca.crt BOLT_TLS_CLIENT=$P/app run_js "TLS with a client certificate" "$LOCK/driver_test.js" "$PORT" alice "new pass" 5.4 quick
  BOLT_TLS_CA=$P/ca.crt run_js "TLS without a client certificate" "$LOCK/driver_test.js" "$PORT" alice "new pass" 5.4 refused
  BOLT_TLS_CA=$P/ca.crt BOLT_TLS_CLIENT=$P/rogue run_js "TLS with a client certificate of another CA" "$LOCK/driver_test.js" "$PORT" alice "new pass" 5.4 refused
  stop_echo
else
  skip "TLS: openssl is not installed"
fi

# ---- hostile clients ---------------------------------------------------------------------------
start_echo hostile --no-auth --max-message 65536 --hello-timeout 1500 --max-connections 100 --message-timeout 2000
for c in garbage huge-chunks huge-string failed-ignored reset-queued; do
  run_js "hostile $c" "$LOCK/hostile.js" "$PORT" "$c"
done
# a byte-a-second client and 150 idle connections while a driver is served
node "$LOCK/hostile.js" "$PORT" slow >"$T/slow.out" 2>&1 &
slow=$!
node "$LOCK/hostile.js" "$PORT" idle 150 >"$T/idle.out" 2>&1 &
idle=$!
run_js "during a flood" "$LOCK/driver_test.js" "$PORT" x x 5.4 quick
wait $slow && ok "hostile slow: $(cut -c6- "$T/slow.out")" || bad "hostile slow: $(cat "$T/slow.out")"
wait $idle && ok "hostile idle: $(cut -c6- "$T/idle.out")" || bad "hostile idle: $(cat "$T/idle.out")"
stop_echo
contains "$T/hostile.stats" "refused_full=" "the server counted its refusals"
# big messages held at once: past --max-buffered the big holders fail, a driver is served
start_echo budget --no-auth --max-buffered 3000000 --max-message 8000000
run_js "hostile budget" "$LOCK/hostile.js" "$PORT" budget 4
run_js "after the budget was exceeded" "$LOCK/driver_test.js" "$PORT" x x 5.4 quick
stop_echo
check "connections over the memory budget were counted" grep -qE 'closed_memory=[1-9]' "$T/budget.stats"
check "connections over the cap were refused" grep -qE 'refused_full=[1-9]' "$T/hostile.stats"
check "slow and idle clients were timed out" grep -qE 'closed_slow=[1-9]' "$T/hostile.stats"
check "oversized and garbage input closed connections" grep -qE 'closed_bad=[1-9]' "$T/hostile.stats"

echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
