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
  trap e2e_cleanup EXIT
}

e2e_cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
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
