#!/usr/bin/env bash
# The test command (the README's second quick-start command, and what CI runs
# through .ci/run).
#
#   1. installs missing dependencies, the build's and the tests' (scripts/deps.sh
#      --tests)
#   2. builds two trees: build/ (RelWithDebInfo with assertions) and
#      build-asan/ (the same with -DSL_SANITIZE=ON: AddressSanitizer + UBSan)
#   3. runs every test (cmocka units and tests/e2e_*.sh) with ctest in both;
#      one throw-away radosgw (scripts/radosgw.sh, ~20 s to start) serves the
#      object-storage tests of both trees and is stopped at the end
#      then, for build/, the public library as an application sees it
#      (scripts/embed-check.sh): `cmake --install` into a temporary prefix,
#      examples/embed.c compiled with the installed shiplog.pc alone against
#      libshiplog.so and against libshiplog.a and run, the .so's exports
#      checked against include/shiplog.h
#   4. builds CMake's Release type (-O3 -DNDEBUG, what packagers build) in
#      build-release/, tests included, and runs nothing there: gcc warns
#      differently at -O3, and -Werror makes a warning a broken build
#   5. smoke-runs the benches briefly so they do not rot: bench_commit for
#      0.5 s per run, bench_crypt and bench_ship on a few MB, bench_query
#      --quick (beside PostgreSQL when root and PostgreSQL 15 are there: bench/query),
#      and a bench_gen workload applied with shiplog exec and checked with shiplog verify
#      (numbers are printed, never judged)
#   6. runs every libFuzzer target (tests/fuzz/run.sh, clang, build-fuzz/)
#      for FUZZ_SECONDS (default 20) each on its seed corpus; skipped with a
#      message when clang is missing
# It goes on after a failure so that one run shows every problem, exits
# non-zero if anything failed, and ends with one summary line, after a line
# per failure ("FAILED: ...") and per skipped test with the reason the test
# gave ("skipped: NAME (TREES: REASON)", from its "skip: REASON" line; a
# part a test left out, from its "skip WHAT" line, is listed as "NAME, a
# part"; it does not count as a skipped test).
# SL_BUILD_DIR, SL_ASAN_BUILD_DIR and SL_RELEASE_BUILD_DIR override the
# build directories.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/deps.sh --tests || { echo "test: dependencies could not be installed" >&2; exit 1; }

BUILD=${SL_BUILD_DIR:-build}
ASAN=${SL_ASAN_BUILD_DIR:-build-asan}
RELEASE=${SL_RELEASE_BUILD_DIR:-build-release}
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
passed=0 failed=0 skipped=0
problems=()
skip_keys=()         # "NAME: REASON", in the order first seen
declare -A skip_trees # "NAME: REASON" -> the trees it was skipped in

section() { printf '\n=== %s ===\n' "$*"; }
fail() {
  problems+=("$1")
  failed=$((failed + ${2:-1}))
}

# build DIR [cmake args...]
build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g" \
    -DSL_BUILD_TESTS=ON "$@" &&
    cmake --build "$dir" -j"$(nproc)"
}

# skipped_in TREE NAME REASON: notes a skipped test for the summary.
skipped_in() {
  local k="$2: $3"
  [[ -n ${skip_trees[$k]+x} ]] || skip_keys+=("$k")
  skip_trees[$k]+="${skip_trees[$k]:+, }$1"
}

# skip_reason DIR NAME: the "skip: REASON" line a skipped test printed
# (ctest keeps every test's output in Testing/Temporary/LastTest.log).
skip_reason() {
  awk -v name="$2" '
    /^[0-9]+\/[0-9]+ Test: / { t = substr($0, index($0, "Test: ") + 6); inside = (t == name); next }
    inside && /^skip: / { print substr($0, 7); found = 1; exit }
    inside && /^<end of output>$/ { inside = 0 }
    END { if (!found) print "no reason given" }' "$1/Testing/Temporary/LastTest.log" 2>/dev/null ||
    echo "no reason given"
}

# run_ctest DIR: adds the tree's counts to the totals.
run_ctest() {
  local dir=$1 log total nfail nskip
  log=$(mktemp)
  ctest --test-dir "$dir" --output-on-failure -j2 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  if ! grep -qE '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log"; then
    fail "$dir: ctest ran no test (rc $rc)"
    rm -f "$log"
    return
  fi
  total=$(sed -nE 's/.* failed out of ([0-9]+).*/\1/p' "$log" | tail -1)
  nfail=$(sed -nE 's/.*tests passed, ([0-9]+) tests? failed out of.*/\1/p' "$log" | tail -1)
  nskip=$(grep -cE '\(Skipped\)$' "$log")
  local name part
  for name in $(sed -nE 's/^[[:space:]]*[0-9]+ - (.*) \(Skipped\)$/\1/p' "$log"); do
    skipped_in "$dir" "$name" "$(skip_reason "$dir" "$name")"
  done
  # parts a test that ran left out ("skip WHAT" lines, lib_e2e.sh's skip)
  while IFS=$'\t' read -r name part; do
    skipped_in "$dir" "$name, a part" "$part"
  done < <(awk '/^[0-9]+\/[0-9]+ Test: / { t = substr($0, index($0, "Test: ") + 6) }
    /^skip [^:]/ { print t "\t" substr($0, 6) }' "$dir/Testing/Temporary/LastTest.log" 2>/dev/null)
  rm -f "$log"
  passed=$((passed + total - nfail - nskip))
  skipped=$((skipped + nskip))
  if ((nfail > 0)); then
    fail "$dir: $nfail of $total tests failed" "$nfail"
  elif ((rc != 0)); then
    fail "$dir: ctest exited $rc"
  fi
  if ((total == 0)); then
    fail "$dir: no tests"
  fi
}

# The S3 server of tests/e2e_s3.sh and bench/s3, started once for both trees
# (e2e_s3.sh starts its own when none runs, and stops only what it started).
section "radosgw (scripts/radosgw.sh)"
rgw_started=0
if scripts/radosgw.sh status; then
  echo "radosgw: one runs already"
elif scripts/radosgw.sh start >/dev/null || scripts/radosgw.sh start >/dev/null; then
  rgw_started=1
else
  echo "radosgw: could not start; tests/e2e_s3.sh will try itself" >&2
fi

section "build: $BUILD/"
if build "$BUILD"; then
  section "tests: $BUILD/"
  run_ctest "$BUILD"
  section "embed: examples/embed.c against the installed library (scripts/embed-check.sh)"
  scripts/embed-check.sh "$BUILD"
  nbad=$?
  passed=$((passed + 4 - nbad))
  ((nbad == 0)) || fail "embed: $nbad of 4 parts failed (scripts/embed-check.sh $BUILD)" "$nbad"
else
  fail "$BUILD: build failed"
fi

section "build: $ASAN/ (AddressSanitizer + UBSan)"
if build "$ASAN" -DSL_SANITIZE=ON; then
  section "tests: $ASAN/"
  run_ctest "$ASAN"
else
  fail "$ASAN: build failed"
fi

section "build: $RELEASE/ (Release, built only)"
if cmake -S . -B "$RELEASE" -DCMAKE_BUILD_TYPE=Release -DSL_BUILD_TESTS=ON && cmake --build "$RELEASE" -j"$(nproc)"; then
  passed=$((passed + 1))
else
  fail "$RELEASE: Release build failed"
fi

section "bench smoke"
if [[ -x $BUILD/bench_commit && -x $BUILD/bench_gen && -x $BUILD/shiplog ]]; then
  smoke=$BUILD/bench-smoke
  rm -rf "$smoke"
  mkdir -p "$smoke"
  if "$BUILD/bench_commit" --seconds 0.5 --dir "$smoke" --json "$smoke/commit.json"; then
    passed=$((passed + 1))
  else
    fail "bench_commit smoke run failed"
  fi
  if "$BUILD/bench_gen" --tx 300 --ops-per-tx 1-10 --seed 7 --nodes-first 20 >"$smoke/gen.jsonl" &&
    "$BUILD/shiplog" init "$smoke/store" &&
    "$BUILD/shiplog" exec "$smoke/store" "$smoke/gen.jsonl" >/dev/null &&
    "$BUILD/shiplog" verify "$smoke/store"; then
    echo "bench_gen: 300 transactions applied and verified"
    passed=$((passed + 1))
  else
    fail "bench_gen workload did not apply or verify"
  fi
  if [[ ! -x $BUILD/bench_crypt ]] || "$BUILD/bench_crypt" --mb 2 --rounds 1; then
    passed=$((passed + 1))
  else
    fail "bench_crypt smoke run failed"
  fi
  if [[ ! -x $BUILD/bench_ship ]] ||
    "$BUILD/bench_ship" --seconds 0.5 --loads 1000 --backlog-mb 4 --rounds 1 --dir "$smoke"; then
    passed=$((passed + 1))
  else
    fail "bench_ship smoke run failed"
  fi
  # bench_query beside PostgreSQL where bench/query can start one (root, PostgreSQL 15 installed),
  # else shiplog's side alone
  # PostgreSQL runs as the postgres user, who may not reach into the
  # checkout (CI's is under a root-only folder): its work folder is in /tmp.
  bench_query_smoke() {
    if ((EUID == 0)) && [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
      local pgdir rc
      pgdir=$(mktemp -d /tmp/shiplog-bench-query.XXXXXX) && chmod 755 "$pgdir" || return 1
      bench/query --quick --no-build --build "$BUILD" --dir "$pgdir"
      rc=$?
      rm -rf "$pgdir"
      return $rc
    else
      "$BUILD/bench_query" --quick --dir "$smoke" --shiplog "$BUILD/shiplog"
    fi
  }
  if [[ ! -x $BUILD/bench_query ]] || bench_query_smoke; then
    passed=$((passed + 1))
  else
    fail "bench_query smoke run failed"
  fi
  # bench_bolt through bench/peer --bolt, shiplog's side alone (serve, ship, receive --bolt): no
  # root, no PostgreSQL
  if [[ ! -x $BUILD/bench_bolt ]] ||
    bench/peer --bolt --no-pg --quick --no-build --build "$BUILD" --dir "$smoke" --json "$smoke/bolt.json"; then
    passed=$((passed + 1))
  else
    fail "bench_bolt smoke run (bench/peer --bolt --no-pg --quick) failed"
  fi
  rm -rf "$smoke"
else
  fail "bench smoke: $BUILD/bench_commit, bench_gen or shiplog missing"
fi

if [[ -x $BUILD/bench_s3 ]] && scripts/radosgw.sh status; then
  # shellcheck disable=SC1090
  if (source <(scripts/radosgw.sh env) && "$BUILD/bench_s3" --mib 8 --dir "$BUILD/bench-s3"); then
    passed=$((passed + 1))
  else
    fail "bench_s3 smoke run failed"
  fi
  rm -rf "$BUILD/bench-s3"
fi
((rgw_started)) && scripts/radosgw.sh stop

section "fuzz targets (tests/fuzz/run.sh)"
flog=$(mktemp)
FUZZ_SECONDS=${FUZZ_SECONDS:-20} tests/fuzz/run.sh 2>&1 | tee "$flog"
rc=${PIPESTATUS[0]}
if ((rc == 0)); then
  passed=$((passed + 1))
elif ((rc == 77)); then
  skipped=$((skipped + 1))
  skipped_in "${FUZZ_BUILD_DIR:-build-fuzz}" "fuzz targets" "$(tail -1 "$flog" | sed 's/^fuzz: //')"
else
  fail "fuzz targets: a crash or a build failure (see above)"
fi
rm -f "$flog"

echo
for p in "${problems[@]}"; do echo "FAILED: $p"; done
for k in "${skip_keys[@]}"; do echo "skipped: ${k%%: *} (${skip_trees[$k]}: ${k#*: })"; done
echo "test: $passed passed, $failed failed, $skipped skipped"
((failed == 0 && passed > 0))
