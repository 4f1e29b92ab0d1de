# The harness shared by the end-to-end scripts that start shiplog processes
# (sourced, not run): a scratch directory, a printed and replayable seed,
# pass/fail counters, and a cleanup that SIGKILLs every process whose PID
# the script appended to pids and keeps $T when something failed; then the
# checks scripts share (expect, contains), file helpers (flip, size) and
# start_receiver.

# e2e_begin NAME: $T (scratch, fresh), $SEED (SL_SEED=N replays a run),
# RANDOM seeded from it, counters, and the EXIT trap.
e2e_begin() {
  T=${SL_TEST_TMP:-/tmp/shiplog-test}/$1.$$
  rm -rf "$T" && mkdir -p "$T" || exit 1
  SEED=${SL_SEED:-$(($(date +%s) % 100000))}
  RANDOM=$SEED
  echo "seed $SEED (rerun with SL_SEED=$SEED)"
  passed=0
  failed=0
  skipped=0
  pids=()
  e2e_on_exit=()
  trap e2e_cleanup EXIT
}

e2e_cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  local c
  for c in "${e2e_on_exit[@]}"; do $c 2>/dev/null; done
  if [ "$failed" -eq 0 ]; then rm -rf "$T"; else echo "kept $T for inspection"; fi
}

ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; }
skip() { skipped=$((skipped + 1)); echo "skip $1"; }
check() { # check DESCRIPTION CMD...: CMD's exit status decides
  local desc=$1
  shift
  if "$@"; then ok "$desc"; else bad "$desc"; fi
}
jqe() { jq -e "$@" >/dev/null; }

# expect STATUS DESCRIPTION CMD...: CMD (60 s at most) must exit STATUS;
# its stdout goes to $T/out, its stderr to $T/err (shown on failure).
expect() {
  local want=$1 desc=$2
  shift 2
  timeout 60 "$@" >"$T/out" 2>"$T/err"
  local got=$?
  if [ "$got" -eq "$want" ]; then ok "$desc"; else
    bad "$desc (exit $got, want $want)"
    sed 's/^/    err: /' "$T/err" | head -5
  fi
}
# contains FILE TEXT DESCRIPTION: FILE holds TEXT (a fixed string).
contains() {
  if grep -qF -- "$2" "$1"; then ok "$3"; else
    bad "$3: '$2' not in $1"
    sed 's/^/    | /' "$1" | tail -5
  fi
}
# flip FILE OFFSET: change one byte (xor 0x55) in place.
flip() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  # shellcheck disable=SC2059
  printf "$(printf '\\%03o' $((b ^ 0x55)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
size() { stat -c %s "$1"; }

# start_receiver DATA ARGS...: `shiplog receive` on 127.0.0.1 (a free port)
# with ARGS (TLS or --insecure, ...) and the script's ROOT array
# (--allow-root when root); sets RX_PID (added to pids) and RX_PORT; its
# stderr goes to $T/rx.log. Returns 1 if it does not listen within 10 s.
start_receiver() {
  local data=$1 pf="$T/port.$RANDOM" i p
  shift
  rm -f "$pf"
  "$BIN" receive --listen 127.0.0.1:0 --data "$data" --ready-file "$pf" --heartbeat-ms 200 \
    --timeout-ms 2000 --verbose "${ROOT[@]}" "$@" 2>>"$T/rx.log" &
  RX_PID=$!
  pids+=("$RX_PID")
  for i in $(seq 200); do
    p=$(cat "$pf" 2>/dev/null)
    if [[ $p =~ ^[0-9]+$ ]]; then RX_PORT=$p; return 0; fi
    kill -0 "$RX_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "    cannot start a receiver:"; tail -3 "$T/rx.log" | sed 's/^/    /'
  return 1
}

# ---- a primary, its workload and its standby (the fault scripts) ------------------------
# Need $BIN, $GEN (bench_gen), $SEED and $T.
# e2e_gen FILE N CHUNK: N random transactions whose ids do not meet other chunks'.
e2e_gen() { "$GEN" --tx "$2" --ops-per-tx 1-6 --seed $((SEED + $3)) --id-base $(($3 * 10000000 + 1)) >"$1"; }
e2e_last_txid() { "$BIN" stats "$1" --json | jq -r .last_txid; }
# e2e_rx_json DATA STREAM FIELD: the receiver's status of STREAM, one field.
e2e_rx_json() { "$BIN" status --data "$1" --stream "$2" --json 2>/dev/null | jq -r ".streams[0].$3 // empty"; }
# e2e_wait_applied DATA STREAM TXID SECONDS
e2e_wait_applied() {
  local deadline=$((SECONDS + $4)) a
  while :; do
    a=$(e2e_rx_json "$1" "$2" applied)
    [ "$a" = "$3" ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "    stream $2: applied ${a:-none}, want $3"
      "$BIN" status --data "$1" --stream "$2" | sed 's/^/    /'
      return 1
    fi
    sleep 0.1
  done
}
# e2e_same_export STORE STANDBY: the canonical exports are byte-equal.
e2e_same_export() {
  "$BIN" export "$1" --to "$T/p.json" && "$BIN" export "$2" --to "$T/s.json" || return 1
  cmp -s "$T/p.json" "$T/s.json" && return 0
  echo "    exports differ:"
  diff "$T/p.json" "$T/s.json" | head -5 | cut -c1-150 | sed 's/^/    /'
  return 1
}
# e2e_netns: a fresh network namespace $NS with its loopback up (root only;
# removed at exit). Returns 1 where namespaces do not work.
e2e_netns() {
  NS=sl$$x$RANDOM
  ip netns add "$NS" 2>/dev/null || return 1
  e2e_on_exit+=("ip netns del $NS")
  ip netns exec "$NS" ip link set lo up
}
# e2e_cut PORT / e2e_heal: silently drop every packet to or from PORT
# inside $NS (no RST: the peers must notice by themselves).
e2e_cut() {
  ip netns exec "$NS" nft -f - <<NFT
table inet slcut {
  chain in { type filter hook input priority 0; tcp dport $1 drop; tcp sport $1 drop; }
}
NFT
}
e2e_heal() { ip netns exec "$NS" nft delete table inet slcut 2>/dev/null; }
