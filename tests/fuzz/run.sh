#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang and runs
# each for a bounded time on its seed corpus (tests/fuzz/corpus/NAME, left
# unchanged: new inputs go to the build tree). Called by scripts/test.sh.
#
#   tests/fuzz/run.sh [NAME...]       # default: every target
#   FUZZ_SECONDS=20                   # per target
#   FUZZ_BUILD_DIR=build-fuzz         # the clang tree (-DSL_FUZZ=ON)
#
# A crash, leak, timeout or sanitizer report stops that target; its input is
# kept in FUZZ_BUILD_DIR/artifacts/NAME/ and the script exits 1 after the
# others ran. Every crash found becomes a regression input in
# tests/fuzz/regress/NAME/ and a fix: ctest replays the seed corpus and the
# regressions through each harness in every build (fuzz_replay_NAME,
# tests/fuzz/replay.c). Exit 77 when clang is missing.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

SECONDS_EACH=${FUZZ_SECONDS:-20}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
if ! command -v clang >/dev/null; then
  echo "fuzz: clang is not installed; skipping the fuzz targets (scripts/deps.sh --tests installs it)"
  exit 77
fi
CC=clang cmake -S . -B "$BUILD" -DSL_FUZZ=ON -DSL_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" >/dev/null || exit 1
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in tests/fuzz/fuzz_*.c; do
    n=$(basename "$f" .c)
    targets+=("${n#fuzz_}")
  done
fi
cmake --build "$BUILD" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null || {
  echo "fuzz: build failed" >&2
  exit 1
}

# The decoders' own error lines would drown libFuzzer's: the target's stderr
# is closed (-close_fd_mask=2); sanitizer reports still come out.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()
for n in "${targets[@]}"; do
  seeds=tests/fuzz/corpus/$n
  work=$BUILD/corpus/$n
  art=$BUILD/artifacts/$n
  mkdir -p "$work" "$art"
  log=$BUILD/fuzz-$n.log
  echo "fuzz: $n for ${SECONDS_EACH}s (seeds: $(ls "$seeds" 2>/dev/null | wc -l))"
  "$BUILD/fuzz_$n" "$work" "$seeds" -max_total_time="$SECONDS_EACH" -timeout=10 \
    -close_fd_mask=2 -print_final_stats=1 \
    -artifact_prefix="$art/" >"$log" 2>&1
  rc=$?
  stats=$(grep -E '^#[0-9]+' "$log" | tail -1)
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -1)
  echo "fuzz: $n: ${runs:-?} runs; last: ${stats:-none}"
  if ((rc != 0)) || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log"; then
    failed+=("$n")
    echo "fuzz: $n FAILED (rc $rc); see $log and $art/" >&2
    grep -E 'ERROR:|runtime error:|SUMMARY' "$log" | head -5 >&2
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: failures in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, no failure"
