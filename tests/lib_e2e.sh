# The harness shared by the end-to-end scripts that start shiplog processes
# (sourced, not run): a scratch directory, a printed and replayable seed,
# pass/fail counters, and a cleanup that SIGKILLs every process whose PID
# the script appended to pids and keeps $T when something failed.

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
expect() { # expect STATUS DESCRIPTION CMD...: stdout in $T/out, stderr in $T/err
  local want=$1 desc=$2
  shift 2
  "$@" >"$T/out" 2>"$T/err"
  local got=$?
  if [ "$got" -eq "$want" ]; then ok "$desc"; else
    bad "$desc (exit $got, want $want)"
    sed 's/^/    err: /' "$T/err" | head -5
  fi
}
contains() { # contains FILE TEXT DESCRIPTION
  if grep -qF -- "$2" "$1"; then ok "$3"; else
    bad "$3: '$2' not in $1"
    sed 's/^/    | /' "$1" | tail -5
  fi
}
