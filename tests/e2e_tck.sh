#!/usr/bin/env bash
# The openCypher TCK through `shiplog query` (tests/tck/run.mjs): the runner
# first reads every feature file (every scenario, step and expected value),
# then runs the scenarios on fresh stores and prints passed/failed/skipped
# by directory; it fails when a scenario of tests/tck/passing.txt fails.
# Skips (77) without node or before shiplog has a query command.
# Needs $SL_BIN, $SL_TEST_TMP, $SL_SOURCE; SL_TCK_JOBS (default 2) and
# SL_TCK_FILTER (a regex on scenario keys) narrow a run.
set -u

. "$(dirname "$0")/lib_e2e.sh"
e2e_need
command -v node >/dev/null || { echo "skip: node is not installed, so the TCK runner cannot run (scripts/deps.sh --tests installs nodejs)"; exit 77; }
e2e_begin e2e_tck
RUN=$SRC/tests/tck/run.mjs

check "every TCK feature, scenario and expected value is read" node "$RUN" --parse-only
if ! "$BIN" query --help >/dev/null 2>&1; then
  echo "skip: $BIN has no query command yet, so no scenario can run"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ] || exit 1
  exit 77
fi
# The stores (one per scenario, each fsynced) go to memory where there is /dev/shm.
S=$T
if [ -w /dev/shm ]; then
  S=$(mktemp -d /dev/shm/e2e_tck.XXXXXX) || exit 1
  rm_stores() { rm -rf "$S"; }
  e2e_on_exit+=(rm_stores)
fi
args=(--bin "$BIN" --tmp "$S" --jobs "${SL_TCK_JOBS:-2}" --failures "$T/failures.txt")
[ -n "${SL_TCK_FILTER:-}" ] && args+=(--filter "$SL_TCK_FILTER")
check "no scenario of tests/tck/passing.txt fails" node "$RUN" "${args[@]}"
[ "$failed" -eq 0 ] || echo "each failure's detail: $T/failures.txt"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
